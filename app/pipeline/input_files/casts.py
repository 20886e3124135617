"""How validate reads a required column's values as its type: from text (CSV, JSON Lines), from
floats (an id 2.7 is no id, nor one at or past 2**53, which may stand for another) and decimals,
integers (is_active 2 is not true) and zoned timestamps.
A value that cannot be read exactly comes out null; validate tells that from a missing one."""

import polars as pl

_TRUE = ("true", "t", "yes", "y")
_FALSE = ("false", "f", "no", "n")
_EXACT_FLOAT = 2**53  # every whole number below it is a Float64
# at or past 2**(significand bits) a float is no longer every whole number: 2**53 + 1 is stored as
# 2**53, so a Float64 id of 2**53 may be either (in a Float32, 2**24 + 1 is 2**24)
_SIGNIFICAND_BITS: dict[type[pl.DataType], int] = {pl.Float16: 11, pl.Float32: 24, pl.Float64: 53}
_WHOLE_TEXT = r"^([+-]?\d+)\.0*$"  # 3.0, as pandas writes an integer column that has a gap
# 1e3, 1.5e3: a mantissa of up to 16 significant digits is read exactly through a Float64 (below
# 2**53, a whole Float64 is then the number written); 1.00000000000000001e1 is read as 10 there.
# Leading and trailing zeros are no digits of it: 0.0000000000000001e16 is 1, 1.000000000000000000e1 10
_SCIENTIFIC = r"^[+-]?[0.]*(?:\d\.?){0,16}0*[eE]"


def cast(name: str, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """Column `name`, of type `source`, as `target`; null where a value cannot be read exactly."""
    col = pl.col(name)
    if isinstance(source, pl.String) and isinstance(target, pl.Boolean):
        return _text_boolean(col.str.strip_chars().str.to_lowercase())
    if isinstance(source, pl.String) and isinstance(target, pl.Datetime):
        return parse_timestamp(col.str.strip_chars())
    if isinstance(source, pl.String) and target.is_integer():
        return _text_integer(col.str.strip_chars(), target)
    if isinstance(source, pl.String) and target.is_numeric():
        return col.str.strip_chars().cast(target, strict=False)
    if isinstance(source, pl.Datetime) and source.time_zone is not None:  # the instant, in UTC
        return col.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(target)
    if source.is_integer() and isinstance(target, pl.Boolean):
        return _zero_one(col)
    if source.is_float() and target.is_integer():  # a cast would cut 2.7 down to 2
        wide = col.cast(pl.Float64)  # exact; Polars' floor() leaves a Float16 2.5 as it is
        exact = (wide == wide.floor()) & (wide.abs() < 2 ** _SIGNIFICAND_BITS[type(source)])
        return pl.when(exact).then(wide.cast(target, strict=False))
    if isinstance(source, pl.Decimal) and target.is_integer():  # so would it 3.50, and 2.7
        whole = col.cast(target, strict=False)
        return pl.when(whole.cast(source, strict=False) == col).then(whole)
    return col.cast(target, strict=False)


def keeps_sent(source: pl.DataType, target: pl.DataType) -> bool:
    """Whether a column's cast can lose what was sent: then the original is kept beside it, for
    rejects to show (a UInt64 past Int64's range too: it was rejected as a null id, value lost)."""
    if isinstance(source, pl.String):
        return not isinstance(target, pl.String)
    if target.is_integer():
        return source.is_float() or isinstance(source, pl.Decimal | pl.UInt64)
    if isinstance(target, pl.Datetime):  # ms and days reach past microseconds' ±292,000 years
        return isinstance(source, pl.Date) or (
            isinstance(source, pl.Datetime) and source.time_unit == "ms"
        )
    return source.is_integer() and isinstance(target, pl.Boolean)


def _text_integer(text: pl.Expr, target: pl.DataType) -> pl.Expr:
    """Whole numbers read exactly, also past 2**53 and written N.0; 1e3 through Float64, where it
    is exact. 2.5, 9007199254740995.5 (whole once a Float64) and 1.00000000000000001e1 (more
    digits than a Float64 holds) are null."""
    exact = text.str.replace(_WHOLE_TEXT, "${1}").cast(target, strict=False)
    number = text.cast(pl.Float64, strict=False)
    whole = (number == number.floor()) & (number.abs() < _EXACT_FLOAT)
    scientific = pl.when(text.str.contains(_SCIENTIFIC) & whole).then(
        number.cast(target, strict=False)
    )
    return pl.coalesce(exact, scientific)


def _text_boolean(lowered: pl.Expr) -> pl.Expr:
    """true/false, t/f, yes/no, y/n, or a number that is 1 or 0 (1.0 too, as JSON Lines sends)."""
    words = pl.when(lowered.is_in(_TRUE)).then(True).when(lowered.is_in(_FALSE)).then(False)
    return pl.coalesce(words, _zero_one(_text_integer(lowered, pl.Int64())))


def _zero_one(number: pl.Expr) -> pl.Expr:
    return pl.when(number == 1).then(True).when(number == 0).then(False)


def parse_timestamp(text: pl.Expr) -> pl.Expr:
    """ISO 8601 text as a naive UTC timestamp, value by value: with an offset (+05:30, +0530, +05)
    or Z (converted to UTC), without one (taken as it is), to the minute or finer, or a date alone.
    Anything else is null."""
    text = text.str.replace(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})([Zz+-]|$)", "${1}:00${2}")
    text = text.str.replace(r"^(\d{4}-\d{2}-\d{2}[T ][\d:.]+[+-]\d{2})$", "${1}:00")
    zoned = text.str.to_datetime("%+", time_unit="us", time_zone="UTC", strict=False)
    naive = [
        text.str.to_datetime(layout, time_unit="us", strict=False)
        for layout in ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f")
    ]
    day = text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
    return pl.coalesce(zoned.dt.replace_time_zone(None), *naive, day)
