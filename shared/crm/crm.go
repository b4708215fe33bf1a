// Package crm holds the records the metered endpoints create for an
// organization: contacts and audiences.
package crm

// Contact is a person an organization stores, as the contacts endpoint accepts it.
type Contact struct {
	OrgID              string   `json:"organization_id" dynamodbav:"org_id"`
	ID                 string   `json:"-" dynamodbav:"contact_id"`
	AudienceID         *string  `json:"audience_id,omitempty" dynamodbav:"audience_id,omitempty"`
	FirstName          *string  `json:"first_name,omitempty" dynamodbav:"first_name,omitempty"`
	LastName           *string  `json:"last_name,omitempty" dynamodbav:"last_name,omitempty"`
	JobTitle           *string  `json:"job_title,omitempty" dynamodbav:"job_title,omitempty"`
	FunctionalArea     *string  `json:"functional_area,omitempty" dynamodbav:"functional_area,omitempty"`
	CompanyName        *string  `json:"company_name,omitempty" dynamodbav:"company_name,omitempty"`
	CompanyDomain      *string  `json:"company_domain,omitempty" dynamodbav:"company_domain,omitempty"`
	CompanyLinkedInURL *string  `json:"company_linkedin_url,omitempty" dynamodbav:"company_linkedin_url,omitempty"`
	City               *string  `json:"city,omitempty" dynamodbav:"city,omitempty"`
	StateRegion        *string  `json:"state_region,omitempty" dynamodbav:"state_region,omitempty"`
	Country            *string  `json:"country,omitempty" dynamodbav:"country,omitempty"`
	PostalCode         *string  `json:"postal_code,omitempty" dynamodbav:"postal_code,omitempty"`
	LinkedInURL        *string  `json:"linkedin_url,omitempty" dynamodbav:"linkedin_url,omitempty"`
	WorkEmails         []string `json:"work_emails" dynamodbav:"work_emails,omitempty"`
	PersonalEmails     []string `json:"personal_emails" dynamodbav:"personal_emails,omitempty"`
	Phones             []string `json:"phones" dynamodbav:"phones,omitempty"`
	Age                *int     `json:"age,omitempty" dynamodbav:"age,omitempty"`
	Gender             *string  `json:"gender,omitempty" dynamodbav:"gender,omitempty"`
	CreatedAt          string   `json:"created_at" dynamodbav:"created_at"`
}

// Audience is a named group of contacts that can be synced to ad platforms.
type Audience struct {
	ID               string  `json:"id" dynamodbav:"audience_id"`
	OrgID            string  `json:"organization_id" dynamodbav:"org_id"`
	Name             string  `json:"name" dynamodbav:"name"`
	Description      *string `json:"description" dynamodbav:"description,omitempty"`
	LinkedIn         bool    `json:"linkedin" dynamodbav:"linkedin"`
	Google           bool    `json:"google" dynamodbav:"google"`
	Facebook         bool    `json:"facebook" dynamodbav:"facebook"`
	TrackingUTMValue string  `json:"tracking_utm_value" dynamodbav:"tracking_utm_value"`
	CreatedAt        string  `json:"created_at" dynamodbav:"created_at"`
}
