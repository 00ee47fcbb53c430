"""What people do, as actions: each applies the rules (webapp/rules/) and writes (webapp/data/).

Actions never publish anything: the write is the publication, and the change stream carries it
to every process (webapp/live/). Handlers (webapp/web/) read the request, call one action and
answer.
"""
