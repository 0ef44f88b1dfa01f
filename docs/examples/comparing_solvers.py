"""Compare solvers (and peers) on the same instances: a table and a performance profile."""

from chita_opt import study

instances = study.make_instances("toeplitz", n_instances=3, n=200, p=500, k=20, rho=0.9, snr=5.0)
methods = ["chita", "cd", "iht", "backsolve", "magnitude", "omp"]
table = study.compare(methods, instances, repeats=1)
print(table)

# methods within a factor 1 + 1e-6 of the best objective, per instance
for method in methods:
    wins = sum(r["relative_gap"] <= 1e-6 for r in table.rows if r["method"] == method)
    print(f"{method:>10}: best on {wins} of {len(instances)} instances")

table.to_csv("study.csv")
table.performance_profile("performance_profile.png")
