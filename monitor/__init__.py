"""The intake stage: validate contract events, apply each once, keep account and rep state.

Pure logic lives in `contract` (validation) and `state` (applying events, rolling
windows, territory aggregates); `app`, `intake` and `planner` wire it to Faust.
"""
