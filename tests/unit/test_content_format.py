"""What an input file's content looks like before it is read (app/pipeline/input_files/content_format.py): a
JSON array only when it parses as one, a JSON Lines file of blank lines said to be just that."""

from pathlib import Path

import pytest

from app.pipeline.input_files import content_format, inputs
from app.pipeline.input_files.compression import InputError

ARRAY_AS_CSV = (
    "file: line 1: a JSON array: the content looks like JSON, not CSV; write it as JSON Lines, "
    'one JSON object per line like {"id": 1}, and send it as format=jsonl'
)
ARRAY_AS_JSONL = (
    'file: line 1: a JSON array; JSON Lines has one JSON object per line, like {"id": 1}'
)
# a JSON array longer than the start looked at (64 KiB): cut short, its first item still parses
LONG_ARRAY = "[" + ",".join(f'{{"id": {i}, "name": "a"}}' for i in range(5000)) + "]\n"


def _refusal(tmp_path: Path, content: str | bytes, fmt: str) -> str | None:
    path = tmp_path / "in"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    try:
        content_format.check(path, fmt, "file")
    except InputError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    "header",
    ["[-1 is a name],x", '["a"],x', "[1],x", "[id],[name]", "[-1 is a name],x\n" + "1,2\n" * 20000],
    ids=["minus", "quote", "digit", "names", "long"],
)
def test_a_csv_header_in_brackets_is_not_a_json_array(tmp_path: Path, header: str) -> None:
    """'[-1 is a name],x' was refused as "a JSON array": its [ and - looked like one's start."""
    assert _refusal(tmp_path, header + "\n1,2\n", "csv") is None


@pytest.mark.parametrize(
    "content",
    ['[{"id": 1}]\n', '[\n  {"id": 1},\n  {"id": 2}\n]\n', "[-1, 2]", "[]", LONG_ARRAY],
    ids=["one-line", "over-lines", "numbers", "empty", "long"],
)
def test_a_json_array_is_one_whatever_it_is_read_as(tmp_path: Path, content: str) -> None:
    assert (_refusal(tmp_path, content, "csv"), _refusal(tmp_path, content, "jsonl")) == (
        ARRAY_AS_CSV,
        ARRAY_AS_JSONL,
    )


def test_a_csv_header_in_brackets_sent_as_json_lines_is_told_it_is_csv(tmp_path: Path) -> None:
    """It was told "a JSON array"."""
    assert _refusal(tmp_path, "[id],[name]\n1,a\n", "jsonl") == (
        "file: line 1: comma-separated names: the content looks like CSV, not JSON Lines; "
        "send it as format=csv"
    )


@pytest.mark.parametrize(
    "content", [b"\n\n\n", b"\xef\xbb\xbf  \r\n\t\n", b" "], ids=["newlines", "bom", "space"]
)
def test_a_json_lines_file_of_blank_lines_is_told_so(tmp_path: Path, content: bytes) -> None:
    """Three blank lines were "line 4: not JSON Lines", a line the file does not have."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    message = (
        'the file has only blank lines; JSON Lines has one JSON object per line, like {"id": 1}'
    )
    with pytest.raises(InputError) as checked:
        inputs.check(path, "jsonl", tmp_path / "scratch")
    with pytest.raises(InputError) as converted:
        inputs.convert(path, "jsonl", tmp_path / "run" / "raw.parquet")
    assert (str(checked.value), str(converted.value)) == (
        f"file: {message}",
        f"input_path: {message}",
    )
