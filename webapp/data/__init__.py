"""The database: models, the connection (the embedded server when there is no MONGODB_URI, and
its workarounds), and the queries, one module per resource. Queries only: the rules they apply
are the callers' (webapp/actions/), and nothing else touches the client."""
