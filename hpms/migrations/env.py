"""Alembic environment: runs on the engine hpms hands over (hpms.db.migrate)."""

from alembic import context

import hpms.models
from hpms.db import make_engine

config = context.config
target_metadata = hpms.models.load_all()  # every table, for autogenerate (some load lazily)


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:  # plain `alembic` invocation by a developer
        engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
