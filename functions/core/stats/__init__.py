"""Bias-corrected analytics, pure numpy/scipy.

| method | module | when | reference |
|---|---|---|---|
| Welch t-test | inference.welch | mean KPIs, unequal variances | Welch (1947); = scipy ttest_ind(equal_var=False) |
| two-proportion z-test | inference.two_proportion_z | conversion KPIs | = statsmodels proportions_ztest |
| CUPED | inference.cuped | a pre-period covariate exists | Deng et al. (2013), Lin (2013) slopes; ~ HC2 |
| delta-method ratio | inference.delta_ratio | ratio KPIs (refunds per purchase) | Deng et al. (2018) |
| relative lift CI | inference.relative_lift | every comparison | Fieller interval, same t(df) as the p-value |
| Holm / Benjamini-Hochberg | multiple | secondary KPIs | = statsmodels multipletests |
| confidence sequence | sequential | guardrails in every sweep | Waudby-Smith et al. (2023), gbstats tuning |
| SRM chi-square | quality.srm | every analysis and rollout stage | flag at p < 0.001 |
| pre-period balance | quality.pre_period_balance | CUPED inputs | A/A test on the covariate |
| exclusion balance | quality.exclusion_balance | every filter | chi-square removed vs kept per arm |
| ... per region | quality.exclusion_balance_by_region | every filter | same, inside each region (Bonferroni) |
| spillover-excluded | pipeline.analyse_stats | links across arms | primary method without linked units |
| missing / late data | quality.missing_data, late_data | every analysis | share per arm (chi-square), late share |
| staleness | quality.staleness | every analysis | age of newest data and of the sweep snapshot |
| winsorizing | corrections.winsorize | mean KPIs only | p99 of pooled non-zero values; capped view, decision uncapped |
| sufficient statistics | sufficient | every test | sums about a shift, pairwise merge (Chan et al. 1979) |
| input validity | pipeline.validate_units, stats_validity | every analysis | NaN/inf => INVALID_INPUT, no decision |
| robust outliers | corrections.robust_outliers | bots / abnormal usage | median/MAD robust z |
| power / MDE | power | every result | two-sample normal approximation |
| trust + decision | trust.recommend | every result | SRM / exclusion imbalance => UNTRUSTWORTHY |
"""
