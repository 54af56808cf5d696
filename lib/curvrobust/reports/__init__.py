"""Each study's tables and figures from its per-model result files (pandas, matplotlib).

Two modules per study: `studyNNN` (`study000` … `study003`) makes the tables —
`make_table(name, records, **params)` returns the numeric frame, the readable frame and the
caption — and imports no plotting code; `studyNNN_figures` draws the figures —
`make_figure(name, records, **params)` returns the figure — and may use `studyNNN`'s reading
helpers. So an edit to the plotting code (`curvrobust.reports.plots`,
`curvrobust.curvature.surfaces`) reruns only figures. Display names and caption texts come in through `params` from the study's plan
(`curvrobust.plans.studyNNN`), so editing one reruns exactly the outputs that show it.
"""
