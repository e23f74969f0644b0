#!/usr/bin/env bash
# Replay every fuzz target's seed/regression corpus under ASan+UBSan with
# the ordinary compiler (findings of `make fuzz` become corpus files here).
sh "$(dirname "$0")/../fuzz/run.sh" --replay
