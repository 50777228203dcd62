"""Single-row INSERT and UPDATE without the ORM's query compiler.

For the hot paths only (the webhook's `wechat.inbound.receive`, `wechat.live.record`):
building a query through the ORM costs several times the database round trip on
the machines we run on (docs/benchmarks.md §1). Values still go through each
field's `get_db_prep_save`, so what is stored is byte for byte what the ORM
would store — JSON, aware datetimes (naive UTC on SQLite), file names.
Identifiers in the SQL come from model metadata only; every value is bound.
"""

from functools import cache

from django.db import connection


@cache
def _insert_sql(model, vendor, ignore_conflicts):
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    table, columns = quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields)
    sql = (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
        f"{' ON CONFLICT DO NOTHING' if ignore_conflicts else ''} RETURNING {quote(model._meta.pk.column)}"
    )
    return sql, fields


def insert(obj, *, ignore_conflicts=False):
    """Insert unsaved `obj`; set its pk and return True, or False if a unique constraint kept it out."""
    sql, fields = _insert_sql(type(obj), connection.vendor, ignore_conflicts)
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return True


def update(model, pk, values, expressions=()):
    """UPDATE one row by pk.

    `values` maps field names to Python values (bound parameters);
    `expressions` are (field name, SQL, params) for values the statement itself
    decides from the row as it is now, e.g. ("waiting_since", "COALESCE(waiting_since, %s)", [t]).
    """
    quote = connection.ops.quote_name
    meta = model._meta
    sets, params = [], []
    for name, value in values.items():
        field = meta.get_field(name)
        sets.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    for name, sql, sql_params in expressions:
        sets.append(f"{quote(meta.get_field(name).column)} = {sql}")
        params.extend(sql_params)
    with connection.cursor() as cursor:
        sql = f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
        cursor.execute(sql, [*params, pk])


def prep(model, name, value):
    """`value` as field `name` of `model` would bind it (for the SQL of `update` expressions)."""
    return model._meta.get_field(name).get_db_prep_save(value, connection)
