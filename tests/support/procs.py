"""What /proc says of a process the tests started or are waiting to see gone."""

from pathlib import Path


def alive(pid: int) -> bool:
    """The process exists and is neither a zombie waiting to be reaped nor dead (Z, X)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone: no such file, or it went between the open and the read
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")
