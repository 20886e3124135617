"""The local stack as plain processes: `make up` / `down` / `doctor` (commands.py), `make migrate`
and `make clean STATE_DIR=…`, with what each process is given, what the stack writes down and the
locks that keep two stacks apart."""
