"""Scoring on the web: scorecards, the debrief and report, rubrics, outcomes, the analytics pages,
the scores export and webhook subscriptions, each a small route module over the scoring domain."""
