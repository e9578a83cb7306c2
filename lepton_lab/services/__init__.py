"""One facade per resource (cluster, runs, jobs, schedules, models).

REST handlers, the CLI, ``ll.jobs`` and the widgets call these, so each operation (stopping a
run, paging a log, "run now", deleting a job's files) is written once. Methods are blocking
(database, file system, cluster); the server calls them off its IOLoop. They take and return
the contract's models (:mod:`lepton_lab.contract`) and raise its errors (``RequestError``,
``NotFound``, ``Conflict``), which REST answers as 400/404/409 and the CLI prints.
"""
