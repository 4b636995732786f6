-- Devices and parameters with less than 80 % of the day's hours valid.
SELECT local_day, facility_id, mn, pollutant, valid_hours, completeness
FROM v_data_completeness
WHERE completeness < 0.8
ORDER BY completeness, mn, pollutant;
