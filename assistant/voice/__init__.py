"""Voice front end: audio in/out, speech-to-text, text-to-speech, and the loop that talks to the daemon.

Nothing here is imported by the daemon; ``assistant voice`` runs beside it and talks to it over HTTP.
"""
