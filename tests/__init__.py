"""The test suite, a package so its modules and shared code import by qualified name
(``tests.support.store``), and test files in different folders may share a basename."""
