"""Two small rubrics for the web tests: one course with every criterion kind, and a second course."""

TEST_RUBRIC = """
id = "test-capstone"
title = "Test capstone"
course = "Test Course"
version = "1.0.0"
pass_mark = 60

[[skills]]
name = "Test-driven development"
url = "https://skills.example.org/tdd"
framework = "Backend skills"
code = "BE-3"

[[criteria]]
id = "tests"
kind = "tests"
title = "Tests pass"
weight = 20
levels = [
  { level = 0, points = 0, descriptor = "no passing tests" },
  { level = 1, points = 1, descriptor = "one test passes", min_tests = 1 },
  { level = 2, points = 2, descriptor = "two tests, all passing", min_tests = 2, all_pass = true },
]

[[criteria]]
id = "coverage"
kind = "coverage"
title = "Coverage"
weight = 10
levels = [
  { level = 0, points = 0, descriptor = "low" },
  { level = 1, points = 1, descriptor = "half the lines", min_line = 50 },
]

[[criteria]]
id = "complexity"
kind = "complexity"
title = "Simple code"
weight = 10
levels = [
  { level = 0, points = 0, descriptor = "tangled" },
  { level = 1, points = 1, descriptor = "simple", max_average = 10 },
]

[[criteria]]
id = "docs"
kind = "artifact"
title = "Usage guide"
weight = 20
levels = [
  { level = 0, points = 0, descriptor = "missing" },
  { level = 1, points = 1, descriptor = "present", min_found = 1 },
  { level = 2, points = 2, descriptor = "complete", min_complete = 1 },
]
artifacts = [{ id = "guide", title = "Usage guide", patterns = ["docs/guide.md"], sections = ["Usage"] }]

[[criteria]]
id = "design"
kind = "manual"
title = "Design judgement"
weight = 20
levels = [
  { level = 0, points = 0, descriptor = "absent" },
  { level = 1, points = 1, descriptor = "adequate" },
  { level = 2, points = 2, descriptor = "convincing" },
]

[[criteria]]
id = "defense"
kind = "manual"
title = "Defense"
weight = 20
levels = [
  { level = 0, points = 0, descriptor = "absent" },
  { level = 1, points = 1, descriptor = "adequate" },
  { level = 2, points = 2, descriptor = "convincing" },
]

[[gates]]
id = "tests-pass"
criterion = "tests"
min_level = 2
description = "the tests must pass"
"""

OTHER_RUBRIC = """
id = "other-capstone"
title = "Other capstone"
course = "Other Course"
version = "2.0.0"
pass_mark = 50

[[criteria]]
id = "complexity"
kind = "complexity"
title = "Simple code"
weight = 50
levels = [
  { level = 0, points = 0, descriptor = "tangled" },
  { level = 1, points = 1, descriptor = "simple", max_average = 10 },
]

[[criteria]]
id = "talk"
kind = "manual"
title = "Talk"
weight = 50
levels = [
  { level = 0, points = 0, descriptor = "absent" },
  { level = 1, points = 1, descriptor = "given" },
]
"""
