-- Construction-site hours where the site's PM10 exceeded the nearest station's by more than 50 µg/m³.
SELECT d.local_day, d.site_id, s.project_name, d.hour_local, d.pm10_site, d.pm10_station,
       d.pm10_diff
FROM mart_dust_hourly d JOIN ref_dust_sites s USING (site_id)
WHERE d.pm10_diff > 50
ORDER BY d.local_day, d.site_id, d.hour_local;
