"""Alembic environment of the samo-nb journal store.

Hand-written package data (nbdev exports only the notebooks' modules, so this file is
committed as it is). `samo_nb.store.migrate` passes its open connection in
`config.attributes['connection']`; from the command line give the database with
`-x url=...`.
"""
from alembic import context
from sqlalchemy import create_engine

from samo_nb.store import Base

config = context.config


def run_migrations(connection) -> None:
    "Run the pending revisions on `connection`, comparing against the store's models for autogenerate."
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == 'sqlite')  # SQLite alters tables by copying them
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get('connection')
if connection is not None:
    run_migrations(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get('url') or config.get_main_option('sqlalchemy.url')
    engine = create_engine(url)
    with engine.connect() as conn:
        run_migrations(conn)
        conn.commit()
    engine.dispose()
