"""`bluegreen update`: a new model version becomes a judged cutover.

check (source.py) → download and verify (download.py) → hand the file to the router, which starts
the canary on it → cutover → record the outcome (history.py), one run at a time (lock.py). The
decisions (is this new, was it rejected, what to prune) are pure (plan.py); update.py runs the steps.
"""
