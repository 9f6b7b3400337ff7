"""``python -m service``: run the answering service (see :mod:`service.server`)."""

from service.server import main

main()
