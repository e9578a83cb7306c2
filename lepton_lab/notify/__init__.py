"""Notifications: tell people when a run or a job ends, fails or runs late, where they look.

- ``rules``: the rules of jobs, schedules and the lab (``c.LeptonLab.notifications``):
  checked, stored with their secrets sealed, matched to events.
- ``channels``: the plug-ins that send (entry-point group ``lepton_lab.notification_channels``:
  ``email``, ``webhook``, ``jupyterlab``).
- ``events``: what queues a message: a job's or run's end, and the "late" checks.
- ``delivery``: the sender, run by the process that holds the dispatcher lease: claims due
  messages, sends them, retries with backoff; a channel's failure never fails the job.

Every message is a row of the store (``notifications``) before anything is sent, so a server
killed in between sends it after its restart, once.
"""
