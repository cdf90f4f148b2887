"""gunicorn settings, read from the working directory (`gunicorn
config.wsgi`); command-line options and GUNICORN_CMD_ARGS override them.

preload_app: the master imports the application (config.wsgi, which warms
it up: URLconf, translations, the LINE SDK) before it binds the port and
forks its workers. A port that accepts connections is then a server that
answers at once: without it, each worker loads Django after the fork and
the first requests (LINE's webhook among them, which LINE redelivers when
it waits too long) wait seconds. Workers share the loaded code's memory,
and a restarted worker starts warm.

The number of workers: WEB_CONCURRENCY or --workers (README, Deployment).
"""

preload_app = True
