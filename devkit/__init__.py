"""Development tools of tierstream: the embedded stack (Tansu and Redis), the synthetic bank,
the demo and their ``tierstream-dev`` command. The runtime (``streams``) imports none of it."""
