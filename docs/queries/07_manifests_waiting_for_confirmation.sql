-- Hazardous-waste transfer manifests not confirmed by the receiver, latest state of each.
SELECT manifest_no, facility_id, receiver_name, waste_code, shipped_t, ship_date, batch_day
FROM stg_waste_manifests
QUALIFY row_number() OVER (PARTITION BY manifest_no ORDER BY batch_day DESC) = 1
    AND confirmed_date IS NULL
ORDER BY ship_date;
