-- The district at a glance: every facility or construction site with findings, per day.
SELECT local_day, facility_id, name, status, n_breaches, n_unverified_breaches, n_dq_issues
FROM v_compliance_status
ORDER BY local_day, status, facility_id;
