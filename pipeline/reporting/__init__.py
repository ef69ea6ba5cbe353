"""The report: a document model written as markdown and PDF, figures, pictures of predictions,
the papers' printed values and the sections that put them beside the harness's numbers."""
