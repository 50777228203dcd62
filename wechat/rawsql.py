"""Single-row INSERT and UPDATE without the ORM's query compiler.

For the hot paths only (the webhook's `wechat.inbound.receive`, `wechat.live.record`):
building a query through the ORM costs several times the database round trip on
the machines we run on (docs/benchmarks.md §1). Values still go through each
field's `get_db_prep_save`, so what is stored is byte for byte what the ORM
would store — JSON, aware datetimes (naive UTC on SQLite), file names.
Identifiers in the SQL come from model metadata only; every value is bound.

The `*_statement` functions return (sql, params) so that a caller can run
several of them as one PostgreSQL statement (data-modifying WITH clauses).
"""

from functools import cache

from django.db import connection


def cursor():
    """A cursor for hot-path statements.

    On PostgreSQL it binds parameters on the server (psycopg's `Cursor`, not
    Django's default client-side `ClientCursor`): merging forty escaped values
    into the text of the webhook's write statement was the biggest single
    piece of a push's CPU, and a statement sent often with the same text is
    prepared by psycopg after a few uses, so the server stops parsing and
    planning it. Django's wrapper is kept: errors are Django's, queries are
    logged in DEBUG and counted by CaptureQueriesContext.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(psycopg.Cursor(connection.connection))


@cache
def _insert_parts(model, vendor, with_pk):
    # Generated columns are the database's to compute (Contact.window_ends_at).
    fields = [
        f for f in model._meta.concrete_fields if (with_pk or not f.primary_key) and not getattr(f, "generated", False)
    ]
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields), fields


def insert_statement(obj, *, ignore_conflicts=False, source=None):
    """INSERT of `obj` (its pk too when set) RETURNING the pk.

    With `source` (a WITH name), the row is inserted once per row of that
    source — none when it is empty — instead of unconditionally.
    """
    table, columns, fields = _insert_parts(type(obj), connection.vendor, obj.pk is not None)
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    marks = ", ".join(["%s"] * len(fields))
    rows = f"SELECT {marks} FROM {source}" if source else f"VALUES ({marks})"  # noqa: S608
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    pk = connection.ops.quote_name(obj._meta.pk.column)
    return f"INSERT INTO {table} ({columns}) {rows}{conflict} RETURNING {pk}", params  # noqa: S608


def insert(obj, *, ignore_conflicts=False):
    """Insert unsaved `obj`; set its pk and return True, or False if a unique constraint kept it out."""
    sql, params = insert_statement(obj, ignore_conflicts=ignore_conflicts)
    with cursor() as c:
        c.execute(sql, params)
        row = c.fetchone()
    if row is None:
        return False
    saved(obj, row[0])
    return True


def saved(obj, pk):
    """Mark `obj` as the row stored under `pk`."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias


def update_statement(model, pk, values, expressions=(), *, only_if=""):
    """UPDATE of one row by pk.

    `values` maps field names to Python values (bound parameters);
    `expressions` are (field name, SQL, params) for values the statement itself
    decides from the row as it is now, e.g. ("waiting_since", "COALESCE(waiting_since, %s)", [t]);
    `only_if` is an extra SQL condition without parameters.
    """
    fields = [model._meta.get_field(name) for name in values]
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fields, values.values(), strict=True)]
    for _name, _sql, sql_params in expressions:
        params.extend(sql_params)
    sql = _update_sql(
        model, connection.vendor, tuple(f.column for f in fields), tuple((n, e) for n, e, _ in expressions), only_if
    )
    return sql, [*params, pk]


@cache
def _update_sql(model, vendor, columns, expressions, only_if):
    quote = connection.ops.quote_name
    meta = model._meta
    sets = [f"{quote(column)} = %s" for column in columns]
    sets += [f"{quote(meta.get_field(name).column)} = {sql}" for name, sql in expressions]
    where = f"{quote(meta.pk.column)} = %s" + (f" AND {only_if}" if only_if else "")
    return f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} WHERE {where}"  # noqa: S608


def update(model, pk, values, expressions=()):
    """UPDATE one row by pk (see `update_statement`)."""
    sql, params = update_statement(model, pk, values, expressions)
    with cursor() as c:
        c.execute(sql, params)


def prep(model, name, value):
    """`value` as field `name` of `model` would bind it (for the SQL of `update` expressions)."""
    return model._meta.get_field(name).get_db_prep_save(value, connection)
