"""`reviewer eval`: plant known defects in the repository and measure the review (issue 13).

Stages, in the order data flows (each imports only from its left, and from the
review's own modules below it):

  cases.py         the repository at a commit -> planted and control cases (`CasePlan`),
                   deterministic by seed; languages come from `mutants_python`
                   (the standard library's ast) and `mutants_treesitter`
  workspace.py     a case -> a commit object in a scratch repository beside the
                   user's (nothing is written into the user's repository)
  runner.py        cases -> `CaseOutcome`s through the real review pipeline, with the
                   cost gate, resume, and `--batch` through the audit's machinery
  score.py         cases + outcomes -> `Score` (recall, precision, noise, calibration)
  report.py        `Score` -> text, JSON (schemas/eval-report.schema.json), Markdown;
                   two reports side by side (`compare`)
  cli.py           the `reviewer eval` click group
"""
