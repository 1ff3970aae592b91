# The same order for ERP API v2: unit prices as numbers (v2 parses them
# itself), the order's tags as a list, and no free-text note (v2 has no
# such field).
{
  external_id: .id,
  order_number: .name,
  ordered_at: .created_at,
  currency: .currency,
  customer: {
    external_id: .customer.id,
    email: (.email // .customer.email),
    name: ([.customer.first_name, .customer.last_name] | map(select(. != null)) | join(" "))
  },
  ship_to: (.shipping_address | if . == null then null else {
    name, street: .address1, city, postal_code: .zip, country: .country_code
  } end),
  lines: [.line_items[] | {
    external_id: .id,
    sku,
    description: .title,
    quantity,
    unit_price: (.price | tonumber)
  }],
  totals: {
    subtotal: .subtotal_price,
    tax: .total_tax,
    total: .total_price
  },
  tags: (.tags | split(", ") | map(select(. != "")))
}
