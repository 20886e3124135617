"""`python -m app.readiness` (`make doctor`)."""

from app.readiness import main

main()
