"""Answer quality: what green *says*, not only how fast it answers.

`checks` holds pure per-answer and per-pair checks (shared with the rollout judge); `compare`,
`summary`, `verdict` and `report` make up `bluegreen compare`.
"""
