"""Moving endpoints between their legacy and new paths: stages and bucketing, the flag
store, the promotion gate and readiness rule, stage changes, request routing, comparisons
of the two paths and their history, demotion and time budgets. Builds on the read and
write sides and the core. Private."""
