"""`python -m webapp`: serves the app (webapp/server.py)."""

from webapp.server import main

if __name__ == "__main__":  # not when a worker process imports this module again
    main()
