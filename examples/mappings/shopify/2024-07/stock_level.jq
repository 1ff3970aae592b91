# An ERP stock level to Shopify's inventory call (Admin REST API 2024-07,
# POST /inventory_levels/set.json). Shopify's ids are 64-bit integers;
# the ERP keeps them as it got them. A level for a warehouse Shopify does
# not stock from (no location id) is not sent: the delivery ends skipped.
select(.shopify.location_id != null)
| {
    location_id: .shopify.location_id,
    inventory_item_id: .shopify.inventory_item_id,
    available: .on_hand - .reserved
  }
