# nbgrader configuration for the course, used by `python -m autograder` and usable
# by `nbgrader` itself (e.g. `nbgrader generate_assignment --config autograder/nbgrader_config.py`).
# The course directory and gradebook location are set per run by the autograder,
# always outside the repository.
c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "dlcourse"

# What students see in an answer cell.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Execution while autograding: a generous per-cell limit (labs run in quick mode).
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
c.Execute.execute_retries = 0

# Feedback never shows hidden tests or the traceback lines that would quote them.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "autograder.feedback.HideHiddenTests",
]
c.GenerateFeedback.exporter_class = "autograder.feedback.FeedbackExporter"
