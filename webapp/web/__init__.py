"""The web: handlers by resource (a few lines each: read the request, call an action, answer
through respond.py), who is asking (auth.py), and the HTML they answer with."""
