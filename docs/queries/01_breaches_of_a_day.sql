-- Which facilities breached which control on 2024-05-01, worst first, and on what legal basis?
SELECT name, control_id, severity, coalesce(mn || ' ' || pollutant, subject) AS what,
       period_start_local, observed, coalesce(limit_high, limit_low) AS bound, unit,
       verified_status, legal_basis
FROM v_breaches
WHERE local_day = DATE '2024-05-01'
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END,
         name, period_start_local;
