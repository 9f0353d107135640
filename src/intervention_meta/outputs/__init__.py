"""What people read: the APA tables (tables), the HTML report (report) and the provenance of a run
(provenance).
"""
