"""The imperative shell of tierstream: the Faust app, agents, sinks and commands."""
