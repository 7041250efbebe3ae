"""The service's domain over the database: accounts, submissions, reviews, certificates issued, the job queue."""
