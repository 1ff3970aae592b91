# An ERP customer to a HubSpot contact update (CRM API v3,
# PATCH /crm/v3/objects/contacts/{contact_id}): the contact's id goes in
# the path, the properties in the body. HubSpot's property values are
# strings; the ERP's credit limit keeps its decimals.
{
  path: { contact_id: .crm_id },
  headers: { "X-Ferry-Source": "erp" },
  body: {
    properties: {
      email: .email,
      firstname: .first_name,
      lastname: .last_name,
      phone: .phone,
      company: .company,
      erp_customer_number: .number,
      credit_limit: (.credit_limit | tostring),
      lifecyclestage: (if .orders > 0 then "customer" else "lead" end)
    }
  }
}
