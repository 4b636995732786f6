-- Ledger lines whose closing stock is not opening + generated - utilised - transferred - disposed.
SELECT period_month, facility_id, name, waste_code, waste_name, opening_t, generated_t,
       utilised_t, transferred_t, disposed_t, closing_t, balance_gap_t, source_file, "row"
FROM v_waste_balance
WHERE abs(balance_gap_t) > 0.01
ORDER BY abs(balance_gap_t) DESC;
