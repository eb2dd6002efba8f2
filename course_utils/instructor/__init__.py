"""Tools for instructors: the student-version builder, autograding, grade reports, the glossary.

``python -m course_utils.instructor build-student`` writes ``notebooks/student/``;
``python -m course_utils.instructor autograde SUBMISSIONS`` grades a class;
``python -m course_utils.instructor.glossary`` writes Glossary.md. They need the
``[instructor]`` extra (nbformat, nbclient): ``pip install "course_utils[instructor]"``.
"""
