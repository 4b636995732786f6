-- Daily flow-weighted COD (w01018) per wastewater outfall, with the day's validity.
SELECT local_day, facility_name, outlet_id, mn, round(value, 2) AS cod_mg_per_l,
       round(discharge, 3) AS load_kg, valid_hours, valid
FROM v_daily_values
WHERE pollutant = 'w01018'
ORDER BY local_day, facility_name, outlet_id;
