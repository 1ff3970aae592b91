# A Shopify order (webhook topic orders/create, Admin API 2024-07 payload)
# to the ERP's sales order (ERP API v1). Money stays as Shopify writes it
# (decimal strings); ids are 64-bit and pass through untouched.
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
    unit_price: .price
  }],
  totals: {
    subtotal: .subtotal_price,
    tax: .total_tax,
    total: .total_price
  },
  note: .note
}
