"""Live delivery: one change stream per watched collection per process (follower.py), each
change turned into an event by its feed's row (feeds.py), encoded once per audience (wire.py)
and written to the open streams of those who may see it (fanout.py, streams.py). hub.py
composes the parts; replay.py catches a reconnecting stream up; presence.py and people.py keep
who is online."""
