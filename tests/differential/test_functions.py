"""Differential tests: the scalar functions beyond the core set, against DuckDB (values and
result types), and the error every function still unsupported gives: it names the
function as the user wrote it, with its line and column."""

from __future__ import annotations

import pytest
from support.cases import Case, check_case, u

import shoal

FUNCTIONS = [
    ("floor_ceil_trunc_double", "floor(weight), ceil(weight), trunc(weight)"),
    ("floor_ceil_trunc_decimal", "floor(price), ceil(discount), trunc(tax_rate)"),
    ("floor_int_is_double", "floor(qty), ceil(store)"),
    ("sqrt_ln_log_exp", "sqrt(weight), ln(weight), log(weight), log10(qty), exp(discount)"),
    ("power_sign", "power(qty, 2), pow(weight, 0.5), sign(price - 50), sign(qty - 25)"),
    ("greatest_least_ints", "greatest(qty, store, 10), least(qty, store)"),
    ("greatest_least_mixed", "greatest(qty, price), least(weight, discount)"),
    ("greatest_least_strings", "greatest(region, status), least(region, 'm')"),
    ("left_right", "left(product, 5), right(product, 3), left(product, -2), right(product, -4)"),
    ("pad", "lpad(region, 8, '.'), rpad(status, 3, '-'), lpad(product, 4, 'x')"),
    ("repeat_reverse", "repeat(status, 3), repeat(region, store % 3), reverse(product)"),
    ("replace_strpos", "replace(product, 'a', 'A'), strpos(product, 'o'), position('e' IN region)"),
    (
        "starts_ends_contains",
        "starts_with(product, 'promo'), ends_with(product, 'tin'), contains(product, 'box')",
    ),
    (
        "regexp",
        """regexp_matches(product, '^[a-z]+ [a-z]+$'), regexp_replace(product, '[aeiou]', '_'),
                  regexp_replace(product, '[aeiou]', '_', 'g'), regexp_replace(product, '(\\w+) (\\w+)', '\\2 \\1')""",
    ),
    (
        "split_part",
        "split_part(product, ' ', 1), split_part(product, ' ', 2), split_part(product, 'o', 4)",
    ),
    (
        "date_trunc",
        """date_trunc('month', order_date), date_trunc('year', order_date),
                      date_trunc('quarter', ship_date), date_trunc('week', order_date), date_trunc('day', order_date)""",
    ),
    (
        "date_part",
        "date_part('year', order_date), date_part('month', ship_date), date_part('dow', order_date), date_part('doy', order_date)",
    ),
    (
        "date_diff",
        """date_diff('day', order_date, ship_date), date_diff('week', order_date, ship_date),
                     date_diff('month', order_date, ship_date), date_diff('quarter', order_date, ship_date),
                     date_diff('year', order_date, ship_date)""",
    ),
]

CASES: list[Case] = [
    u(f"fn_{fid}", f"SELECT id, {' '.join(text.split())} FROM sales") for fid, text in FUNCTIONS
] + [
    u(
        "fn_people_unicode",
        """
        SELECT person_id, strpos(city, 'r'), left(city, 3), reverse(city), lpad(city, 8, '_'),
               split_part(city, ' ', 2), upper(replace(city, 'ü', 'ue'))
        FROM people""",
    ),
    u(
        "fn_in_where_and_group",
        """
        SELECT date_trunc('month', order_date) AS m, count(*) FROM sales
        WHERE starts_with(product, 'promo') OR regexp_matches(region, '^(north|east)$')
        GROUP BY date_trunc('month', order_date)""",
    ),
    u(
        "fn_tiny_nulls",
        "SELECT id, greatest(i, x), least(i, d), sign(x), left(s, 1), floor(d) FROM tiny",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_functions(case: Case, shoal_connections, diff_data) -> None:
    check_case(shoal_connections(3), case, diff_data.tables, 3)


#: Still unsupported: (as the user writes it, in a SELECT over ``tiny``).
UNSUPPORTED_FUNCTIONS = [
    "array_agg(x)",
    "mode(x)",
    "approx_count_distinct(x)",
    "corr(x, i)",
    "covar_pop(x, i)",
    "make_date(2020, 1, 1)",
    "strftime(dt, '%Y')",
    "strptime('2020', '%Y')",
    "regexp_extract(s, 'a')",
    "unnest([1, 2])",
]


@pytest.mark.parametrize("call", UNSUPPORTED_FUNCTIONS)
def test_unsupported_function_is_named_as_written(call: str, shoal_connections) -> None:
    sql = f"SELECT id,\n       {call} FROM tiny"
    with pytest.raises(shoal.UnsupportedError) as info:
        shoal_connections(3).sql(sql)
    name = call.split("(")[0]
    message = str(info.value)
    assert f"function {name} (line 2, column 8)" in message, message


#: Still unsupported, sqlglot keeps no position: named in DuckDB's spelling.
UNSUPPORTED_UNPOSITIONED = [
    ("arg_min(s, x)", "ARG_MIN"),
    ("try_cast(s AS INTEGER)", "TRY_CAST"),
    ("current_date", "CURRENT_DATE"),
]


@pytest.mark.parametrize(("call", "shown"), UNSUPPORTED_UNPOSITIONED)
def test_unsupported_function_without_position(call: str, shown: str, shoal_connections) -> None:
    with pytest.raises(shoal.UnsupportedError) as info:
        shoal_connections(3).sql(f"SELECT {call} FROM tiny")
    assert f"function {shown}" in str(info.value)
