// Package crm holds the records the metered endpoints create for an
// organization: contacts and audiences.
package crm

// Contact is a person an organization stores, as the contacts endpoint accepts it.
type Contact struct {
	OrgID              string   `json:"organization_id" dynamodbav:"org_id"`
	ID                 string   `json:"id" dynamodbav:"contact_id"`
	AudienceID         *string  `json:"audience_id" dynamodbav:"audience_id,omitempty"`
	FirstName          *string  `json:"first_name" dynamodbav:"first_name,omitempty"`
	LastName           *string  `json:"last_name" dynamodbav:"last_name,omitempty"`
	JobTitle           *string  `json:"job_title" dynamodbav:"job_title,omitempty"`
	FunctionalArea     *string  `json:"functional_area" dynamodbav:"functional_area,omitempty"`
	CompanyName        *string  `json:"company_name" dynamodbav:"company_name,omitempty"`
	CompanyDomain      *string  `json:"company_domain" dynamodbav:"company_domain,omitempty"`
	CompanyLinkedInURL *string  `json:"company_linkedin_url" dynamodbav:"company_linkedin_url,omitempty"`
	City               *string  `json:"city" dynamodbav:"city,omitempty"`
	StateRegion        *string  `json:"state_region" dynamodbav:"state_region,omitempty"`
	Country            *string  `json:"country" dynamodbav:"country,omitempty"`
	PostalCode         *string  `json:"postal_code" dynamodbav:"postal_code,omitempty"`
	LinkedInURL        *string  `json:"linkedin_url" dynamodbav:"linkedin_url,omitempty"`
	WorkEmails         []string `json:"work_emails" dynamodbav:"work_emails,omitempty"`
	PersonalEmails     []string `json:"personal_emails" dynamodbav:"personal_emails,omitempty"`
	Phones             []string `json:"phones" dynamodbav:"phones,omitempty"`
	Age                *int     `json:"age" dynamodbav:"age,omitempty"`
	Gender             *string  `json:"gender" dynamodbav:"gender,omitempty"`
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
