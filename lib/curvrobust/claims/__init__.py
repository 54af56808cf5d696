"""The claims engine: from a study's claims and their evidence to verdicts, power and pages.

* :mod:`.spec`: the verdicts and :class:`~.spec.Claim`, a claim as its study's plan declares it;
* :mod:`.evidence`: the kinds of evidence a claim is judged on (per image, per seed, censored,
  rank correlation, absent) and each study's registry of measures;
* :mod:`.judge`: a claim and its evidence -> a verdict with an effect, its interval and the
  reason, one function per kind of evidence; all of a study's claims at once;
* :mod:`.stats`: the statistics (intervals over seeds and images, power, exact tests);
* :mod:`.render`: ``claims.csv`` and ``claims.md``;
* :mod:`.power`: what a claim would need (seeds, images, job-minutes) to reach 80 % power;
* :mod:`.publish`: the published evidence page (docs/evidence.md) and re-judging it.

Import from the modules: this file imports nothing, so a study's report (which builds
evidence) does not depend on the judge or the pages, and nothing here loads torch.
"""

__all__ = ["evidence", "judge", "power", "publish", "render", "spec", "stats"]
