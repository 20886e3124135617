"""multipart/form-data bodies (the create with an uploaded file) parsed as they stream in, and what
is refused of their framing, their parts and their file names."""
